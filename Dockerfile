# The project's runtime image: Python 3.11 with the dependencies of Pipfile.lock and the project installed.
# Data roots are mounted at /data by the docker-run-*.sh scripts; secrets come from the environment or from
# read-only mounted files, never from the image.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
RUN pip install pipenv
COPY Pipfile Pipfile.lock ./
# Install exactly the locked versions (the project itself is installed below, from the copied sources).
RUN pipenv requirements | grep -v '^-e ' > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY pyproject.toml pipeline_config.json create_uuid_table.py fetch_raw_data.py generate_outputs.py ./
COPY code_schemes ./code_schemes
COPY src ./src
RUN pip install --no-deps --editable .

# Nothing runs by default: the docker-run-*.sh scripts name the entry point.
CMD ["python", "-c", "print('use docker-run-fetch.sh or docker-run-generate.sh')"]
