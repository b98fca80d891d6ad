use orbitalis::prelude::*;

struct Home;

#[core]
impl Home {
    #[sink("lowercase")]
    async fn on_lowercase(&self, out: StringMessage) -> bool {
        !out.0.is_empty()
    }
}

fn main() {}
