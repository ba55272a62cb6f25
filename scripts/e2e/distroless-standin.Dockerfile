# Stand-in for gcr.io/distroless/static-debian13:nonroot, assembled from files prepared by
# scripts/e2e/standins.sh (no RUN: nothing executes, so one build serves every platform).
FROM scratch
COPY etc/ /etc/
COPY usr/ /usr/
COPY tmp/ /tmp/
COPY --chown=65532:65532 home/ /home/
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
