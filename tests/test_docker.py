"""The Docker delivery, checked without a Docker engine: the install script the image shares
with CI (which runs it for real in .ci/run), the image's environment as muse's configs read it,
the Dockerfiles under hadolint, and the tracking server's compose file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

REPO = Path(__file__).parents[1]
TORCH_PIN = re.search(r'"(torch==[^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)


def _install(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), "--dry-run", *options],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("options", "torch", "project"), [
    # .ci/run and the README: pip's own indexes, the working tree in development mode.
    (["--editable", "--extras", "dev"], [], "-e .[dev]"),
    # The image: PyTorch's CPU or CUDA wheel index, the project installed as a package.
    (["--device", "cpu"], ["--index-url", "https://download.pytorch.org/whl/cpu"], "."),
    (["--device", "cuda"], ["--index-url", "https://download.pytorch.org/whl/cu128"], "."),
])
def test_install_steps_pin_torch_first(options, torch, project) -> None:
    done = _install(*options)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        " ".join(["python -m pip install", TORCH_PIN, *torch]),
        f"python -m pip install {project}",
    ]


@pytest.mark.parametrize(("options", "message"), [
    (["--device", "gpu"], "--device must be cpu or cuda, not 'gpu'"),
    (["--devel"], "unknown option '--devel'"),
])
def test_install_refuses_bad_options(options, message) -> None:
    done = _install(*options)
    assert done.returncode == 2
    assert message in done.stderr and not done.stdout


def _dockerfile_env() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def test_the_image_runs_train_py_with_data_and_runs_on_volumes(monkeypatch) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'RUN bash scripts/install.sh --device "${DEVICE}"' in dockerfile
    assert re.search(r"^ARG DEVICE=cpu$", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["python", "train.py"\]$', dockerfile, re.MULTILINE)
    # What the image copies is there.
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for source in line.split():
            assert (REPO / source).exists(), source
    # Its environment, as train.py's config reads it: data from /data, runs in /muse/logs.
    env = _dockerfile_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    # As in a Hydra job: the paths fall back on `hydra:runtime.cwd` when a variable is unset.
    HydraConfig.instance().set_config(cfg)
    try:
        paths, data_dir, tracking_uri = dict(cfg.paths), cfg.data.dir, cfg.logger.tracking_uri
    finally:
        HydraConfig.instance().cfg = None
    volumes = re.search(r"^VOLUME (.+)$", dockerfile, re.MULTILINE).group(1)
    assert paths["data_dir"] == "/data" and data_dir == "/data"
    assert paths["log_dir"] == "/muse/logs"
    assert tracking_uri == "sqlite:////muse/logs/mlflow.db"
    assert '"/data"' in volumes and '"/muse/logs"' in volumes


def _hadolint() -> str:
    """The linter of the dev extra, also when the virtual environment is not activated."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: pip install -e '.[dev]'"
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "docker/mlflow.Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    done = subprocess.run([_hadolint(), str(REPO / dockerfile)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_starts_mlflow_on_postgres_with_artifacts_on_a_volume() -> None:
    spec = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    db, server = spec["services"]["db"], spec["services"]["mlflow"]
    assert db["image"].startswith("postgres:")
    assert (REPO / "docker" / server["build"]["dockerfile"]).is_file()
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    command = server["command"]
    assert command[:2] == ["mlflow", "server"]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert re.fullmatch(r"postgresql://mlflow:.+@db:5432/mlflow", options["--backend-store-uri"])
    assert options["--port"] == "5000" and "5000:5000" in server["ports"]
    mounts = dict(volume.split(":") for volume in server["volumes"])
    assert options["--artifacts-destination"] in mounts.values()
    assert set(mounts) <= set(spec["volumes"])
