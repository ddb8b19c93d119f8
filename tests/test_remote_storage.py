"""s3:// input and output, against a real S3-compatible server (moto) started here on localhost, with
credentials and endpoint from the environment as users give them."""

import io
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, SAMPLES, free_port, read_output, run_prox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(boto3 client, environment for prox) of a fresh moto server with a bucket `corpus`."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    import boto3

    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": url, "FSSPEC_S3_ENDPOINT_URL": url}
    client = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket="corpus")
    lines = SAMPLES.read_text().splitlines(keepends=True)
    for index in range(2):
        client.put_object(Bucket="corpus", Key=f"in/part-{index}.jsonl", Body="".join(lines[index::3]).encode())
    yield client, env
    server.stop()


def prox(env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "prox", *args], capture_output=True, text=True, env=env,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-3000:]}"
    return result


def remote_rows(client, prefix: str) -> dict:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="corpus", Prefix=prefix)["Contents"]]
    rows = []
    for key in keys:
        if key.endswith(".parquet") and "/logs/" not in key:
            body = client.get_object(Bucket="corpus", Key=key)["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return {row["id"]: (row["text"], row["metadata"]["prox_reason"]) for row in rows}


def test_s3_input_and_output_resume_and_verify(s3, tmp_path):
    client, env = s3
    prox(env, "apply", "--input", "s3://corpus/in/", "--output", "s3://corpus/out/")
    assert "OK" in prox(env, "verify", "s3://corpus/in/", "s3://corpus/out/").stdout

    local_in = tmp_path / "in"
    local_in.mkdir()
    lines = SAMPLES.read_text().splitlines(keepends=True)
    for index in range(3):
        (local_in / f"part-{index}.jsonl").write_text("".join(lines[index::3]))
    (local_in / "part-2.jsonl").rename(tmp_path / "part-2.jsonl")
    run_prox("apply", "--input", str(local_in), "--output", str(tmp_path / "local"))
    kept, dropped = read_output(tmp_path / "local")
    assert remote_rows(client, "out/") == {r["id"]: (r["text"], r["metadata"]["prox_reason"]) for r in kept + dropped}

    # a new shard arrives: only it is processed
    client.put_object(Bucket="corpus", Key="in/part-2.jsonl", Body="".join(lines[2::3]).encode())
    again = prox(env, "apply", "--input", "s3://corpus/in/", "--output", "s3://corpus/out/")
    assert "3/3 done" in again.stdout
    assert len(remote_rows(client, "out/")) == len(lines)
    assert "OK" in prox(env, "verify", "s3://corpus/in/", "s3://corpus/out/").stdout
    assert "nothing to do" in prox(env, "apply", "--input", "s3://corpus/in/", "--output", "s3://corpus/out/").stdout


def test_refine_from_s3_with_the_rules_engine(s3):
    client, env = s3
    prox(env, "refine", "--engine", "rules", "--input", "s3://corpus/in/", "--output", "s3://corpus/refined/")
    assert "OK" in prox(env, "verify", "s3://corpus/in/", "s3://corpus/refined/").stdout
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="corpus", Prefix="refined/logs/partial")
            .get("Contents", [])]
    assert keys == []  # partial files were moved into place
