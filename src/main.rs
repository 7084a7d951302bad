fn main() -> std::process::ExitCode {
    gregor::cli::main()
}
