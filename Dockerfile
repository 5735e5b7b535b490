# The code location image. Dagster's Helm chart runs it as
#   dagster api grpc -h 0.0.0.0 -p 3030 -m mlops_assets.definitions
# (deploy/helm/values.yaml); the K8sRunLauncher, k8s_job_executor and Celery workers run the same
# image. The install lines are those of docs/operations.md ("Install for CI and images"), checked by
# mlops_assets_tests/test_deploy_templates.py.
FROM python:3.11-slim

# UV_COMPILE_BYTECODE: the packages are compiled at build time, so that every run worker and
# code server does not compile what it imports as it starts (the image's files are read-only).
ENV PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    MLOPS_DATA_DIR=/mnt/mlops
WORKDIR /opt/mlops-assets

COPY . .
RUN pip install uv
RUN uv sync --frozen --no-dev --extra kubernetes --extra celery
ENV PATH=/opt/mlops-assets/.venv/bin:$PATH
# The dbt manifest the code location loads (outside `dg` and `dagster dev` nothing builds it).
RUN mlops-assets prepare

# dbt writes its target folder at run time; the data folder is a mounted volume in a cluster.
RUN useradd --create-home --uid 1000 mlops \
    && mkdir -p /mnt/mlops \
    && chown -R mlops /opt/mlops-assets/dbt_project /mnt/mlops
USER mlops

EXPOSE 3030
# No ENTRYPOINT: the Helm chart passes the whole command as the container's args.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "-m", "mlops_assets.definitions"]
