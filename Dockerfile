# muse CPU image: installs the project the way the README does; runs the demo data job by default.
FROM python:3.11-slim

WORKDIR /opt/muse
ENV PIP_NO_CACHE_DIR=1 \
    MUSE_DATA_DIR=/data

COPY pyproject.toml README.md ./
COPY muse ./muse
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
 && pip install .

VOLUME ["/data"]
CMD ["sh", "-c", "muse demo --data \"$MUSE_DATA_DIR\""]
