# Ferry worker and API image. The same image runs `ferry worker` and `ferry api`.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/ferry
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
RUN pip install --no-cache-dir -c constraints.txt .
# The project (agents, tools, schemas, topics, connectors) is mounted or copied here.
COPY agents ./agents
COPY tools ./tools
COPY schemas ./schemas
ENV LITELLM_LOCAL_MODEL_COST_MAP=True \
    PYTHONUNBUFFERED=1
USER 1000
CMD ["ferry", "worker"]
