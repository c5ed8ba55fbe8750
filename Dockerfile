# The spine-order CDS Hooks service, for the local demo in docker-compose.yml (docs/performance-deployment.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CDS_DATA_DIR=/var/lib/cds

WORKDIR /app
COPY pyproject.toml README.md build_native.py ./
COPY cds_service ./cds_service
COPY hooks ./hooks
COPY fhir_fixtures ./fhir_fixtures
# Editable, so the package keeps finding hooks/ and fhir_fixtures/ beside it (settings.PROJECT_ROOT) as in a
# checkout; the postgres extra brings the psycopg driver for CDS_DATABASE_URL=postgresql+psycopg://...; the native
# extra and gcc compile the hot modules (build_native.py, as make serve does), then gcc and the build are removed.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -e ".[postgres,native]" \
    && python build_native.py && rm -rf build .mypy_cache \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cds \
    && mkdir -p /var/lib/cds && chown cds /var/lib/cds

USER cds
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

# --allow-unauthenticated: this image is for the local demo, where the CDS Hooks sandbox or curl call without
# a client JWT. Inside a container the service must bind 0.0.0.0, which `serve` refuses without client
# authentication; a real deployment sets CDS_TRUSTED_ISSUERS_FILE and drops this flag.
CMD ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8080", "--allow-unauthenticated"]
