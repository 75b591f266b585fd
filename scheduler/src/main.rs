//! The `spectree` command-line tool; see [`spectree_scheduler::cli`].

fn main() {
    let code = spectree_scheduler::cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
