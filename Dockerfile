# The project's runtime image: Python 3.11 with exactly the dependencies of Pipfile.lock, and the project's sources.
# The docker-run-*.sh scripts mount data roots at their own paths (at /data where the image itself uses that path);
# secrets come from the stage's standard input (the Rapid Pro token) or read-only mounted files (keys), never from
# the image or the container's environment.
#
# Build with `docker build --network host .` (the docker-run-*.sh scripts do): on engines without a bridge
# network, that is how the build reaches the package index.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app/src

WORKDIR /app

# Exactly the locked versions, checked against their hashes, read straight from Pipfile.lock (no pipenv, no
# resolver, nothing unpinned); this layer is rebuilt only when the lock changes.
COPY Pipfile.lock run_scripts/lib/locked_requirements.py ./
RUN python locked_requirements.py Pipfile.lock > /tmp/requirements.txt \
    && pip install --no-deps --require-hashes --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt locked_requirements.py

# The project runs from its sources (PYTHONPATH above): nothing is built, so nothing a native setup leaves in the
# working tree (a .venv, src/*.egg-info, caches) can reach or change the image; .dockerignore keeps them out of
# the build context as well.
COPY pipeline_config.json create_uuid_table.py fetch_raw_data.py generate_outputs.py ./
COPY code_schemes ./code_schemes
COPY src ./src

# Nothing runs by default: the docker-run-*.sh scripts name the entry point.
CMD ["python", "-c", "print('use docker-run-create-uuid-table.sh, docker-run-fetch.sh or docker-run-generate.sh')"]
