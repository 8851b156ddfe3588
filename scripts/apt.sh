# Sourced by the setup scripts: `apt_install PKG...` installs Debian packages as root, quietly. A
# fresh machine has no package lists yet, so a failed install updates them once and tries again.
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "pyro needs these Debian packages: $* — run as root: apt-get install $*" >&2
    return 1
  fi
  echo "[setup] installing Debian packages: $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
  fi
}
