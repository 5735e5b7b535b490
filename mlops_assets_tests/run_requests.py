"""Executing a sensor's RunRequest in this process as the daemon would launch it: the same asset
selection and tags (a partition key, or a partition range in the tags)."""
import dagster as dg


def execute_request(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest,
                    job_name: str | None = None):
    job = defs.resolve_job_def(job_name) if job_name else defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection) if request.asset_selection else None,
        partition_key=request.partition_key, tags=dict(request.tags), raise_on_error=False)
