fn main() {
    std::process::exit(picklegate::cli::main());
}
