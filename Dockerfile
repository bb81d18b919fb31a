# edgejoin: one container serving HTTP and TFTP to netbooting machines.
# Run it with host networking (see docker-compose.yml): TFTP answers every transfer from a new
# ephemeral UDP port, which Docker's port mapping cannot follow.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
# better-sqlite3 falls back to compiling itself when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# tsx is a runtime dependency (the server is TypeScript run as is); dev tools stay out.
RUN npm ci --omit=dev

FROM node:20-bookworm-slim
# ipxe: the iPXE binaries edgejoin's TFTP serves (/usr/lib/ipxe: undionly.kpxe, snponly.efi, ipxe.efi).
# libcap2-bin: setcap, so the unprivileged server may bind TFTP's port 69.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/node)" \
 && apt-get purge -y libcap2-bin \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY db ./db
COPY server ./server
COPY templates ./templates

RUN mkdir -p /var/lib/edgejoin /srv/edgejoin/boot /srv/edgejoin/artifacts \
 && chown node:node /var/lib/edgejoin /srv/edgejoin/artifacts
ENV NODE_ENV=production \
    EDGEJOIN_DATA_DIR=/var/lib/edgejoin \
    EDGEJOIN_BOOT_DIR=/srv/edgejoin/boot \
    EDGEJOIN_IPXE_DIR=/usr/lib/ipxe \
    EDGEJOIN_ARTIFACTS_DIR=/srv/edgejoin/artifacts \
    EDGEJOIN_HTTP_PORT=8080 \
    EDGEJOIN_TFTP_PORT=69
VOLUME ["/var/lib/edgejoin"]
USER node
EXPOSE 8080/tcp 69/udp

# /readyz: the database takes writes and TFTP is bound (README: "Health checks"). The timeout
# outlasts SQLite's 5 s busy wait, so a briefly held write lock is not mistaken for a failure.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD node -e "const h=process.env.EDGEJOIN_HTTP_HOST;const a=!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.EDGEJOIN_HTTP_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# What `npm start` runs, without npm in between: the server is PID 1, gets `docker stop`'s SIGTERM
# and exits 0 once its listeners are closed.
CMD ["node", "--import", "tsx", "server/main.ts"]
