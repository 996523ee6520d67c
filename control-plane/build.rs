//! `embed_migrations!` reads the migrations directory at compile time, but Cargo only watches
//! the files it was told of: a new migration would leave the binary without it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
