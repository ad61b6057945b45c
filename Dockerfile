# muse in a container: `python train.py` (the default baseline on the data in /data, the
# synthetic demo when /data holds no prepared store) with runs recorded under /muse/logs.
#   docker build -t muse .                                       # CPU build of torch
#   docker build -t muse:cuda --build-arg DEVICE=cuda .          # CUDA build of torch
#   docker run --rm -v "$PWD/data:/data" -v "$PWD/logs:/muse/logs" muse
#   docker run --rm --gpus all -v ... muse:cuda python train.py trainer=gpu task=trust
#   docker run --rm -e MLFLOW_TRACKING_URI=http://tracking-host:5000 -v ... muse
# The torch wheels carry their own CUDA libraries, so the slim base serves both builds; BASE
# picks another base image.
ARG BASE=python:3.11-slim
FROM ${BASE}

# cpu or cuda: which PyTorch wheel index scripts/install.sh takes torch from.
ARG DEVICE=cpu

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    MUSE_ROOT=/muse \
    MUSE_DATA_DIR=/data \
    MLFLOW_TRACKING_URI=sqlite:////muse/logs/mlflow.db

WORKDIR /opt/muse
COPY pyproject.toml README.md ./
COPY scripts/install.sh scripts/
COPY muse muse/
RUN bash scripts/install.sh --device "${DEVICE}"
COPY train.py evaluate.py search.py ./
COPY conf conf/

VOLUME ["/data", "/muse/logs"]
CMD ["python", "train.py"]
