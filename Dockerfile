FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends mosquitto libgl1 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/its
COPY pyproject.toml README.md ./
COPY its ./its
COPY maps ./maps
COPY telematics ./telematics
COPY parking ./parking
COPY video ./video
COPY traffic ./traffic
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["its", "serve", "--host", "0.0.0.0"]
