#[derive(Debug, clap::Args)]
pub(crate) struct BenchCmd {}
impl BenchCmd {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        anyhow::bail!("wip")
    }
}
