# muse in a container: `python train.py` (the default baseline on the data in /data, the
# synthetic demo when /data holds no prepared store) with runs recorded under /muse/logs.
#   scripts/build-image.sh                                  # no registry: a debootstrap base
#   docker build --network host -t muse .                   # CPU build of torch, python:3.11-slim
#   docker build --network host -t muse:cuda --build-arg DEVICE=cuda .   # CUDA build of torch
#   docker run --rm -v "$PWD/data:/data" -v "$PWD/logs:/muse/logs" muse
#   docker run --rm --gpus all -v ... muse:cuda python train.py trainer=gpu task=trust
#   docker run --rm --network host -e MLFLOW_TRACKING_URI=http://127.0.0.1:5000 -v ... muse
# BASE is any Debian-like image with python3 (3.10 or newer) and its venv module: the torch
# wheels carry their own CUDA libraries, so one base serves both builds.
ARG BASE=python:3.11-slim

# Stage one installs torch and muse into /opt/venv; only that folder goes on, so neither the
# wheels nor the build's leftovers weigh on the image.
FROM ${BASE} AS install

# Where torch comes from. cpu or cuda: PyTorch's wheel index for that build. Empty: pip's
# configured indexes (PIP_INDEX_URL, a mirror) and the wheels in docker/pip/, for networks
# that cannot reach download.pytorch.org (scripts/build-image.sh --wheels puts them there).
ARG DEVICE=cpu
# pip's own settings: a mirror, and a CA bundle in docker/pip/ where TLS is intercepted
# (PIP_CERT=/tmp/pip/<bundle>.crt).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_FIND_LINKS=/tmp/pip \
    PATH=/opt/venv/bin:$PATH

WORKDIR /opt/muse
RUN python3 -m venv /opt/venv
COPY docker/pip/ /tmp/pip/
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/
COPY muse muse/
RUN bash scripts/install.sh ${DEVICE:+--device "$DEVICE"}

FROM ${BASE}

# The image has no git (nor a checkout): GIT_PYTHON_REFRESH keeps GitPython, which MLflow asks
# for the source's commit, from printing a screenful of warnings on every run.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GIT_PYTHON_REFRESH=quiet \
    MUSE_ROOT=/muse \
    MUSE_DATA_DIR=/data \
    MLFLOW_TRACKING_URI=sqlite:////muse/logs/mlflow.db

COPY --from=install /opt/venv /opt/venv
WORKDIR /opt/muse
COPY train.py evaluate.py search.py ./
COPY conf conf/

VOLUME ["/data", "/muse/logs"]
CMD ["python", "train.py"]
