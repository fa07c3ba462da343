//! Links libpam by its runtime name (`libpam.so.0`, present wherever PAM is; the development
//! symlink `libpam.so` often is not), as the system's own PAM modules do. Without it the
//! module still loads (the application has libpam), but the unit-test binary could not link.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-l:libpam.so.0");
    }
}
