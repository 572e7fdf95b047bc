# picklegate in a container: a static (musl) binary in an image that holds nothing else.
#
#   docker build -t picklegate .
#   docker run --rm -v "$PWD:/repo" --user "$(id -u):$(id -g)" picklegate scan --staged
#
# `--user` matters: libgit2, like git, refuses a repository owned by another user.
# The build stage pins the Rust toolchain by version; pin it by digest too in your own
# registry mirror. The final stage is `scratch`: no shell, no package manager, no git.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache build-base
WORKDIR /src
COPY . .
# The commit `picklegate --version` prints (there is no .git inside the build context).
ARG PICKLEGATE_GIT_COMMIT=unknown
ENV PICKLEGATE_GIT_COMMIT=${PICKLEGATE_GIT_COMMIT}
RUN cargo build --release --locked \
 && cp target/release/picklegate /picklegate \
 && /picklegate --version

FROM scratch
COPY --from=build /picklegate /usr/local/bin/picklegate
COPY LICENSE /usr/share/doc/picklegate/LICENSE
WORKDIR /repo
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/picklegate"]
CMD ["scan", "--staged"]
