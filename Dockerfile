# capmap API image: GraphQL (GraphiQL explorer) at :8000/graphql, /health.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY graph graph
COPY ingest ingest
COPY clustering clustering
COPY matching matching
COPY api api
COPY seeds seeds
RUN pip install . && useradd --create-home capmap && mkdir -p /app/out && chown capmap /app/out
USER capmap
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=12 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health').status == 200 else 1)"
CMD ["capmap", "serve", "--host", "0.0.0.0", "--port", "8000"]
