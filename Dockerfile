# veer in a container: `docker build -t veer .`, then
# `docker run -v $PWD/veer.toml:/etc/veer/veer.toml:ro -p 8080:8080 veer`.
# The config's state_dir should point at a volume (e.g. /var/lib/veer).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/veer /usr/local/bin/veer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/veer --create-home veer
COPY --from=build /usr/local/bin/veer /usr/local/bin/veer
USER veer
WORKDIR /var/lib/veer
VOLUME /var/lib/veer
EXPOSE 8080 9901
ENTRYPOINT ["veer"]
CMD ["run", "-c", "/etc/veer/veer.toml"]
