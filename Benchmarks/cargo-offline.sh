# Sourced by Benchmarks/peers/build.sh and Benchmarks/echo/run.sh: makes a CARGO_HOME whose
# cargo builds offline from Debian's crate directory (librust-*-dev packages), so the Tokio
# programs build with no network.
#   cargo_offline_home DIR   # writes DIR/config.toml
debian_crates=/usr/share/cargo/registry
cargo_offline_home() {
    mkdir -p "$1"
    cat > "$1/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "$debian_crates"
[net]
offline = true
CFG
}
