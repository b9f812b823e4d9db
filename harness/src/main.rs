fn main() {
    eprintln!("ngharness: not yet wired");
    std::process::exit(2);
}
