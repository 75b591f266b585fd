//! The `spectree` command-line tool; see [`spectree_cli::cli`].

// Noun-heavy work allocates and frees small cells at a high rate; mimalloc
// roughly halves the allocator's share of the Nock decrement loop (see
// docs/decisions.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = spectree_cli::cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
