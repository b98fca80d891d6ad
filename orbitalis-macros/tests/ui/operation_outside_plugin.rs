use orbitalis::prelude::*;

struct Lower;

impl Lower {
    #[operation]
    async fn lowercase(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }
}

fn main() {}
