from prox.cli import main

main()
