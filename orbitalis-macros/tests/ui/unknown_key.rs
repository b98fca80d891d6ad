use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Lower {
    #[operation(nmae = "lowercase")]
    async fn lower(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }
}

fn main() {}
