"""Reports of finished runs (prox report): what the run's outputs hold, read in bounded passes, and
one self-contained HTML page of them."""
