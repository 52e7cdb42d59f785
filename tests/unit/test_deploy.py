"""deploy/ checked without a container engine: the lock is current and hashed, the
Dockerfile installs it before the source, and the Cloud Run services probe what exists."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LOCK = DEPLOY / "requirements.lock"


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) from requirements.lock."""
    out: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=\S)", LOCK.read_text()):
        first = block.split("\n", 1)[0]
        match = re.match(r"([A-Za-z0-9_.\-]+)==([^\s\\;]+)", first)
        if match:
            out[canonicalize_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    build = [
        line for line in (DEPLOY / "build-requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return [Requirement(r) for r in [*project["dependencies"], *build]]


def test_the_lock_pins_every_declared_dependency_at_a_version_it_allows() -> None:
    """Each pyproject dependency (and build tool) is in the lock, pinned within its range."""
    pins = locked()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is missing from the lock: run deploy/lock.sh"
        version, _ = pins[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"the lock pins {req.name}=={version}, outside {req.specifier}: run deploy/lock.sh"
        )
    assert "psycopg-binary" in pins  # psycopg[binary]'s extra is locked by its own name


def test_every_locked_package_is_pinned_with_hashes() -> None:
    """pip's --require-hashes needs a hash for every line."""
    pins = locked()
    assert len(pins) > 20
    assert all(hashes >= 1 for _, hashes in pins.values()), pins


def dockerfile() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def index(lines: list[str], pattern: str) -> int:
    found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert found, f"no Dockerfile line matches {pattern!r}"
    return found[0]


def test_the_image_installs_the_hashed_lock_before_copying_the_source() -> None:
    """Dependencies are their own layer: a change of src/ does not reinstall them."""
    lines = dockerfile()
    lock = index(lines, r"^COPY deploy/requirements\.lock")
    install = index(lines, r"^RUN .*pip install --require-hashes .*requirements\.lock")
    source = index(lines, r"^COPY src")
    assert lock < install < source
    assert re.search(r"--no-deps", lines[install])


def stages(lines: list[str]) -> dict[str, list[str]]:
    """The Dockerfile's lines by stage: `FROM X AS name` opens `name`; the last, unnamed
    stage (the image) is "final"."""
    out: dict[str, list[str]] = {}
    name = ""
    for line in lines:
        if line.startswith("FROM"):
            words = line.split()
            name = words[3] if len(words) > 3 and words[2].upper() == "AS" else "final"
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def test_the_wheel_is_built_with_a_compiler_that_stays_out_of_the_image() -> None:
    """The hot path's C part is built in a stage with gcc, offline from the lock's build
    tools; the image installs that wheel, fails if the C part did not build, and has no
    compiler."""
    by_stage = stages(dockerfile())
    assert set(by_stage) == {"base", "build", "final"}
    build = " ".join(by_stage["build"])
    assert re.search(r"apt-get install .*\bgcc\b", build)
    assert "COPY pyproject.toml README.md setup.py ./" in by_stage["build"]
    wheel = r"pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels \."
    assert re.search(wheel, build)
    final = " ".join(by_stage["final"])
    assert "COPY --from=build /wheels /wheels" in by_stage["final"]
    assert re.search(r"pip install --no-deps --no-index /wheels/\*\.whl", final)
    assert 'python -c "import cogmora.engine._quiet"' in final
    assert "gcc" not in final and "gcc" not in " ".join(by_stage["base"])


def test_the_image_runs_any_role_as_a_non_root_user_on_port_8080() -> None:
    """ENTRYPOINT is the CLI (the role is the command), USER is not root, 8080 is exposed."""
    lines = dockerfile()
    [entry] = [json.loads(ln.split(None, 1)[1]) for ln in lines if ln.startswith("ENTRYPOINT")]
    assert entry == ["cogmora"]
    [user] = [line.split()[1] for line in lines if line.startswith("USER")]
    assert user not in ("root", "0")
    assert index(lines, r"^USER") > index(lines, r"^RUN .*pip install --no-deps --no-index /wheels")
    assert "EXPOSE 8080" in lines


def test_the_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    """Everything is ignored but the COPY sources, so no .venv, .git or database is sent."""
    rules = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = set()
    for line in dockerfile():
        if line.startswith("COPY") and not line.startswith("COPY --from="):
            copied |= {p.rstrip("/") for p in line.split()[1:-1] if not p.startswith("--")}
    assert copied == allowed


def services() -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    for path in sorted((DEPLOY / "cloudrun").glob("*.yaml")):
        text = re.sub(r"\$\{(\w+)\}", lambda m: f"x-{m[1].lower()}", path.read_text())
        out[path.stem] = yaml.safe_load(text)
    return out


def container(service: dict) -> dict:  # type: ignore[type-arg]
    [c] = service["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_there_is_a_service_per_role_each_running_its_command() -> None:
    """worker, jobs and api each run the image with their role as the command."""
    from cogmora.cli.main import app

    commands = {c.name for c in app.registered_commands}
    found = services()
    assert set(found) == {"worker", "jobs", "api"}
    for role, svc in found.items():
        assert svc["apiVersion"] == "serving.knative.dev/v1" and svc["kind"] == "Service"
        assert container(svc)["args"] == [role]
        assert role in commands


@pytest.mark.parametrize("role", ["worker", "jobs", "api"])
def test_every_service_probes_healthz_at_start_and_livez_for_liveness(role: str) -> None:
    """Startup waits for /healthz (ready), liveness asks /livez, both on the container port."""
    c = container(services()[role])
    port = c["ports"][0]["containerPort"]
    assert port == 8080
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port}


@pytest.mark.parametrize("role", ["worker", "jobs"])
def test_the_always_on_roles_keep_one_instance_with_cpu_always_allocated(role: str) -> None:
    """The worker and the scheduler act between requests: min 1 instance, no CPU throttling."""
    notes = services()[role]["spec"]["template"]["metadata"]["annotations"]
    assert notes["autoscaling.knative.dev/minScale"] == "1"
    assert notes["run.googleapis.com/cpu-throttling"] == "false"


def test_the_llm_key_comes_from_secret_manager_not_the_file() -> None:
    """COGMORA_LLM_API_KEY is a secret reference wherever it is set."""
    for svc in services().values():
        for env in container(svc).get("env", []):
            if env["name"] == "COGMORA_LLM_API_KEY":
                assert "value" not in env and "secretKeyRef" in env["valueFrom"]


def test_every_placeholder_of_the_services_is_explained_in_deploy_md() -> None:
    """DEPLOY.md sets each ${VAR} the service files use."""
    guide = (ROOT / "DEPLOY.md").read_text()
    names = set()
    for path in (DEPLOY / "cloudrun").glob("*.yaml"):
        names |= set(re.findall(r"\$\{(\w+)\}", path.read_text()))
    missing = sorted(n for n in names if f"export {n}=" not in guide)
    assert not missing, missing
