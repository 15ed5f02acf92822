# spinexr web service: `docker build -t spinexr .` then see compose.yaml and docs/service.md.
# Research software, not a medical device. ultralytics (in the ml extra) is AGPL-3.0.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    YOLO_OFFLINE=1 \
    YOLO_AUTOINSTALL=0 \
    SPINEXR_CACHE=/home/spinexr/.cache/spinexr \
    SPINEXR_DATA_DIR=/data \
    SPINEXR_MODELS=/app/models

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin spinexr \
    && mkdir -p /data /app && chown spinexr:spinexr /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# The postgres extra is the PostgreSQL driver (SPINEXR_DATABASE_URL=postgresql+psycopg://...);
# the pacs extra the DICOM node (spinexr pacs listen).
RUN pip install ".[ml,serve,pacs,postgres]"
COPY models ./models

USER spinexr
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready').status != 200)"
CMD ["spinexr", "serve", "--host", "0.0.0.0", "--port", "8000"]
