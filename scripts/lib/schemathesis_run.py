"""The bounded schemathesis run of scripts/schemathesis (see its header for the options).

Starts `snapex serve` on a free loopback port with an owner-only temporary data directory,
seeds a deployment through the CLI and the HTTP API so that authenticated requests reach real
resources, runs `schemathesis run <base>/api/openapi.json` with every check against it, prints
a short summary of what failed (operation and check), and stops the server however the run
ends. The work directory (data, server log, schemathesis report) is deleted after a clean run
and kept, with its path and the server log's tail printed, after any failure.

Runs under the test venv's python (requests, schemathesis); `scripts/schemathesis` finds it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).resolve().with_name("schemathesis_hooks.py")
V2023 = "application/vnd.atlas.2023-01-01+json"
V2024_05 = "application/vnd.atlas.2024-05-30+json"
# The checks that judge the server against its document: every check schemathesis has, but
# positive_data_acceptance (a schema-valid body must get 2xx). A body can be schema-valid and
# still be refused by a rule no schema expresses: an export naming a snapshot or a bucket
# that does not exist, an access role id of another project, a bucket the permission check
# cannot write, a cluster name already taken. Those are 400/404/409 by the product's rules
# (PRODUCT.md), so that check would report the rules, not the document. Every other check
# (server errors, status codes, content types, response schemas and headers, ignored auth,
# negative data rejection, the stateful ones) stays on.
CHECKS = "all"
EXCLUDED_CHECKS = "positive_data_acceptance"


def log(msg: str) -> None:
    print(f"[schemathesis {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


class SetupError(Exception):
    """The deployment could not be seeded: a product or harness bug, reported as a failure."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_data() -> Path:
    """The shared fixtures, found as the Rust tests find them (tests/support/mod.rs)."""
    env = os.environ.get("SNAPEX_SHARED_DATA")
    if env:
        return Path(env).resolve()
    beside = ROOT.parent / "shared" / "data"
    if beside.is_dir():
        return beside.resolve()
    return Path("/work/shared/data")


class Server:
    """One `snapex serve` process of this run, stopped by pid only."""

    def __init__(self, binary: str, work: Path):
        self.binary = binary
        self.work = work
        self.data = work / "data"
        self.data.mkdir(mode=0o700)
        self.log_path = work / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, grants: list[Path]) -> None:
        args = [
            self.binary, "serve",
            "--data-dir", str(self.data),
            "--listen", f"127.0.0.1:{self.port}",
            "--bucket-root", str(self.work / "buckets"),
            # One principal sends every request of the run, far more than the default 100/s
            # with a burst of 1000: the 429s would measure the limiter, not the API.
            "--rate-limit-per-second", "0",
        ]
        for g in grants:
            args += ["--source-grant", f"*={g}"]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"), NO_COLOR="1")
        log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log_file.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupError(f"snapex serve exited during startup (status {self.proc.returncode})")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SetupError("snapex serve did not answer /healthz within 120 s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"snapex serve (pid {self.proc.pid}) ignored TERM; killing")
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args: str) -> dict:
        out = subprocess.run([self.binary, *args, "--json", "--data-dir", str(self.data)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SetupError(f"snapex {' '.join(args)}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, accept: str = "application/json", body=None) -> dict:
        resp = self.session.request(method, self.base + path, json=body,
                                    headers={"Accept": accept}, timeout=60)
        if resp.status_code != 200:
            raise SetupError(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp.json()


def seed(server: Server, fixtures: Path) -> dict:
    """An organization and project, a Project Owner service account and its token, a replica-set
    cluster and a sharded one with an imported snapshot each, a FILESYSTEM export bucket and a
    finished export job: the ids the generated requests use."""
    org = server.cli("orgs", "create", "Schemathesis Org")
    project = server.cli("projects", "create", "--org", org["id"], "Schemathesis Project")
    sa = server.cli("service-accounts", "create", "--org", org["id"], "--project", project["id"],
                    "--role", "GROUP_OWNER", "--name", "schemathesis")
    resp = requests.post(f"{server.url}/api/oauth/token",
                         auth=(sa["clientId"], sa["clientSecret"]),
                         data={"grant_type": "client_credentials"}, timeout=30)
    if resp.status_code != 200:
        raise SetupError(f"POST /api/oauth/token: {resp.status_code} {resp.text[:500]}")
    token = resp.json()["access_token"]
    api = Api(server.url, token)
    g = project["id"]
    dump = str(fixtures / "mongodump/mongo-tools/mongorestore/testdata/testdirs")
    api.call("POST", f"/api/snapex/v1/groups/{g}/clusters",
             body={"name": "Cluster0", "clusterType": "REPLICASET", "replicaSets": ["rs0"]})
    snapshot = api.call("POST", f"/api/snapex/v1/groups/{g}/clusters/Cluster0/snapshots",
                        body={"parts": [{"replicaSetName": "rs0", "url": dump}]})
    api.call("POST", f"/api/snapex/v1/groups/{g}/clusters",
             body={"name": "Sharded0", "clusterType": "SHARDED", "replicaSets": ["shard0", "shard1"]})
    sharded = api.call("POST", f"/api/snapex/v1/groups/{g}/clusters/Sharded0/snapshots",
                       body={"parts": [{"replicaSetName": "shard0", "url": dump},
                                       {"replicaSetName": "shard1", "url": dump}]})
    bucket = api.call("POST", f"/api/atlas/v2/groups/{g}/backup/exportBuckets", V2024_05,
                      {"cloudProvider": "FILESYSTEM", "bucketName": "schemathesis"})
    job = api.call("POST", f"/api/atlas/v2/groups/{g}/clusters/Cluster0/backup/exports", V2023,
                   {"snapshotId": snapshot["id"], "exportBucketId": bucket["_id"]})
    deadline = time.monotonic() + 300
    while True:
        state = api.call("GET", f"/api/atlas/v2/groups/{g}/clusters/Cluster0/backup/exports/{job['id']}",
                         V2023)["state"]
        if state == "Successful":
            break
        if state in ("Failed", "Cancelled"):
            raise SetupError(f"the seed export job ended {state}")
        if time.monotonic() > deadline:
            raise SetupError(f"the seed export job is still {state} after 300 s")
        time.sleep(0.3)
    return {
        "token": token,
        "orgId": org["id"],
        "groupId": g,
        "groupName": project["name"],
        "clusterName": "Cluster0",
        "snapshotId": snapshot["id"],
        "shardedSnapshotId": sharded["id"],
        "exportBucketId": bucket["_id"],
        "exportId": job["id"],
    }


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string for these values


def write_config(path: Path, base: str, ids: dict, report_dir: Path) -> None:
    """schemathesis.toml: the bearer token on every request and the seeded ids as the path
    parameters' values, so that requests reach real resources rather than 404s; the sharded
    paths get the sharded cluster and its snapshot."""
    params = {k: ids[k] for k in ("orgId", "groupId", "groupName", "clusterName", "snapshotId",
                                  "exportBucketId", "exportId")}
    lines = [
        f"base-url = {toml_str(base)}",
        f"headers = {{ Authorization = {toml_str('Bearer ' + ids['token'])} }}",
        "",
        "[parameters]",
        *[f"{k} = {toml_str(v)}" for k, v in params.items()],
        "",
        "[[operations]]",
        'include-path-regex = "/shardedCluster"',
        f"parameters = {{ clusterName = \"Sharded0\", snapshotId = {toml_str(ids['shardedSnapshotId'])} }}",
        "",
        # DELETE …/backup/schedule removes the policy items, as Atlas's does; the schedule
        # itself stays (GET answers it, empty), so "deleted resource still available" is the
        # documented behaviour there.
        "[[operations]]",
        'include-path-regex = "/backup/schedule$"',
        "checks.use_after_free.enabled = false",
        "",
    ]
    path.write_text("\n".join(lines))
    path.chmod(0o600)


def summarize(report: Path) -> tuple[set[str], set[str], list[str]]:
    """(operations tested, operations failed, lines) from schemathesis's NDJSON event stream:
    one line per operation and check that failed, with how many cases failed it, the
    failure's code and title, and the statuses the server answered those cases with; then
    the errors (a request that timed out or whose connection broke: a hang or a crash)."""
    failures: dict[tuple[str, str], dict] = {}
    errors: list[str] = []
    tested: set[str] = set()
    failed: set[str] = set()
    if not report.exists():
        return tested, failed, [f"no schemathesis report at {report}"]
    for raw in report.read_text().splitlines():
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            continue
        for kind, body in event.items():
            if not isinstance(body, dict):
                continue
            if kind == "ScenarioFinished":
                recorder = body.get("recorder") or {}
                label = recorder.get("label", "?")
                if body.get("status") != "skip":
                    tested.add(label)
                if body.get("status") in ("failure", "error"):
                    failed.add(label)
                interactions = recorder.get("interactions") or {}
                for case_id, checks in (recorder.get("checks") or {}).items():
                    for check in checks:
                        if check.get("status") != "failure":
                            continue
                        info = (check.get("failure_info") or {}).get("failure") or {}
                        entry = failures.setdefault((label, check.get("name", "?")), {
                            "cases": set(), "code": info.get("code", ""),
                            "title": info.get("title", ""), "statuses": set()})
                        entry["cases"].add(case_id)
                        failed.add(label)
                        response = (interactions.get(case_id) or {}).get("response") or {}
                        if "status_code" in response:
                            entry["statuses"].add(response["status_code"])
            elif kind == "NonFatalError":
                failed.add(body.get("label", "?"))
                errors.append(f"{body.get('label', '?')}: {json.dumps(body.get('info', body))[:300]}")
            elif kind == "FatalError":
                errors.append(f"fatal: {json.dumps(body.get('exception', body))[:300]}")
    lines = []
    for (op, check), e in sorted(failures.items()):
        statuses = ",".join(str(s) for s in sorted(e["statuses"])) or "-"
        lines.append(f"{op}  {check} ({e['code']} {e['title']}): {len(e['cases'])} case(s), "
                     f"status {statuses}")
    lines += [f"error: {e}" for e in errors]
    return tested, failed, lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the snapex binary")
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", default="1")
    parser.add_argument("--keep", action="store_true", help="keep the work directory after success")
    parser.add_argument("--schema", help="a document to generate from instead of the served "
                        "/api/openapi.json (a file, e.g. Atlas's spec extract, for exploring)")
    args, extra = parser.parse_known_args()

    work = Path(tempfile.mkdtemp(prefix="snapex-schemathesis-"))
    work.chmod(0o700)
    server = Server(args.bin, work)
    ok = False
    t0 = time.monotonic()
    try:
        fixtures = shared_data()
        grants = [fixtures]
        log(f"starting snapex serve on {server.url} (work dir {work})")
        server.start(grants)
        ids = seed(server, fixtures)
        log(f"seeded project {ids['groupId']}: clusters Cluster0 (snapshot {ids['snapshotId']}, "
            f"export {ids['exportId']}) and Sharded0 (snapshot {ids['shardedSnapshotId']}), "
            f"bucket {ids['exportBucketId']}")
        config = work / "schemathesis.toml"
        report_dir = work / "report"
        write_config(config, server.url, ids, report_dir)
        cmd = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file", str(config),
            "run", str(Path(args.schema).resolve()) if args.schema else f"{server.url}/api/openapi.json",
            "--checks", CHECKS,
            "--exclude-checks", EXCLUDED_CHECKS,
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--workers", args.workers,
            "--generation-deterministic",
            "--request-timeout", "30",
            "--report", "ndjson,junit",
            "--report-dir", str(report_dir),
            "--report-ndjson-path", str(report_dir / "events.ndjson"),
            "--report-junit-path", str(report_dir / "junit.xml"),
            "--no-color",
            *extra,
        ]
        env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HOOKS))
        log("running: " + " ".join(cmd[1:]))
        t1 = time.monotonic()
        status = subprocess.run(cmd, env=env, cwd=work).returncode
        log(f"schemathesis finished in {time.monotonic() - t1:.0f}s (exit {status})")
        crashed = not server.alive()
        tested, failed, lines = summarize(report_dir / "events.ndjson")
        if crashed:
            lines.append(f"snapex serve died during the run (status {server.proc.returncode})")
        ok = status == 0 and not crashed and not failed
        print("== schemathesis summary (operation  check (code title): cases, statuses answered)",
              file=sys.stderr)
        for line in lines:
            print("  " + line, file=sys.stderr)
        if status != 0 and not failed:
            print(f"  schemathesis exited {status} (see its output above)", file=sys.stderr)
        print(f"  {'ok' if ok else 'FAILED'}: {len(tested)} operations tested, {len(failed)} with "
              f"failures; {time.monotonic() - t0:.0f}s in all; report {report_dir}", file=sys.stderr)
        # The plain closing line test-log readers count (operations, not cases).
        print(f"schemathesis: {len(tested - failed)} passed, {len(failed)} failed", flush=True)
    except SetupError as e:
        log(f"error: {e}")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        server.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} (server log: {server.log_path}); last lines of the server log:")
            print(server.tail(), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
