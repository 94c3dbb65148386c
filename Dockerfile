# The signing backend, `s3sign serve`, as a small non-root image.
#   docker build -t s3sign .
#   docker run -p 8080:8080 -e S3SIGN_SERVER_SECRET -e S3SIGN_BUCKET=my-artifacts \
#       -e AWS_REGION=eu-west-1 s3sign
# Credentials come from the AWS chain (task or instance role, or AWS_* variables).
# See docs/deploy.md for replicas behind a load balancer.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY s3sign ./s3sign
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[server]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home s3sign
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 's3sign-cli[server]' \
    && rm -rf /wheels
USER s3sign
ENV PYTHONUNBUFFERED=1 \
    S3SIGN_HOST=0.0.0.0 \
    S3SIGN_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['S3SIGN_PORT']}/healthz\", timeout=2)"]
# Workers: about one per core; each is a separate process (see docs/deploy.md).
CMD ["s3sign", "serve"]
