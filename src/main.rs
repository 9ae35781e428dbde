fn main() -> std::process::ExitCode {
    snapex::cli::main()
}
