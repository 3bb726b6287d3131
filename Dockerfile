# BachGAN as a Hugging Face Docker Space (README front matter: sdk: docker, app_port: 8501).
#
#   docker build -t bachgan .            # or: podman build -t bachgan .
#   docker run -p 8501:8501 bachgan      # http://localhost:8501
#
# BASE is any Debian-based image whose `python3` is Python 3.11 with its venv module:
# python:3.11-slim by default, or a local Debian 12 base (README, "Deploy to Hugging Face
# Spaces"). tests/test_container.py checks this file's contract with the README and the app.
#
# For NVIDIA GPUs (README, "Training on a GPU"): the same base, with TensorFlow's CUDA build,
# whose CUDA and cuDNN come as pip wheels; the host needs the NVIDIA driver and container
# toolkit (`docker run --gpus all`), as a GPU Space has.
#   docker build --build-arg REQUIREMENTS=requirements-gpu.txt -t bachgan-gpu .
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG REQUIREMENTS=requirements.txt

# FluidSynth and its General MIDI soundfont, as packages.txt lists them (a test keeps the two
# lists equal). Their versions are those of the base's Debian release, hence no pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        fluidsynth fluid-soundfont-gm \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash user

# The pinned Python packages (REQUIREMENTS: requirements.txt, or requirements-gpu.txt), in a
# venv of their own (root-owned: the app only reads them).
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
COPY requirements.txt requirements-gpu.txt /tmp/
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r "/tmp/${REQUIREMENTS}" \
    && rm /tmp/requirements.txt /tmp/requirements-gpu.txt

# A Space runs the container as uid 1000. Every place the app writes is under its HOME:
# the parsed corpus and the training lock (BACHGAN_CACHE), the Train page's runs
# (BACHGAN_RUNS), temporary audio renders (TMPDIR, for bachgan.audio's TemporaryDirectory),
# and what the libraries keep in HOME (Keras, Matplotlib, Streamlit). The app never writes
# to /app.
ENV HOME=/home/user \
    BACHGAN_CACHE=/home/user/.cache/bachgan \
    BACHGAN_RUNS=/home/user/runs \
    TMPDIR=/home/user/tmp \
    PYTHONUNBUFFERED=1
COPY --chown=1000:1000 . /app
WORKDIR /app
USER 1000

# Compile the app's Python files (so nothing is written to /app at run time) and parse
# Bach's chorales (about a minute), so that the first visitor does not wait; the parser's
# scratch files in TMPDIR are not needed once the parsed corpus is cached.
RUN python -m compileall -q . \
    && mkdir -p "$BACHGAN_CACHE" "$BACHGAN_RUNS" "$TMPDIR" \
    && python -m bachgan prepare-data \
    && rm -rf "${TMPDIR:?}"/*

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://localhost:8501/_stcore/health', timeout=4).read() != b'ok')"]
# .streamlit/config.toml also says headless, no usage statistics and no file watching. No
# welcome banner: on 0.0.0.0 it would look up the machine's external address on the internet.
CMD ["python", "-m", "streamlit", "run", "streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", "--browser.gatherUsageStats=false", "--logger.hideWelcomeMessage=true"]
