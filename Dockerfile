# Ferry worker image: `ferry worker` runs the project copied below. Every `ferry`
# sub-command is available in it (`docker compose run --rm ferry-worker ferry lint`).
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/ferry
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
RUN pip install --no-cache-dir -c constraints.txt .
# The agent project: agents, tools, schemas, the topic specs and ferry.yaml (model prices
# and rate limits). Replace these with your own project, or mount it at /srv/ferry.
COPY agents ./agents
COPY tools ./tools
COPY schemas ./schemas
COPY topics ./topics
COPY connectors ./connectors
COPY ferry.yaml ./ferry.yaml
ENV LITELLM_LOCAL_MODEL_COST_MAP=True \
    PYTHONUNBUFFERED=1 \
    FERRY_PROJECT=/srv/ferry
USER 1000
CMD ["ferry", "worker"]
