use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Lower {
    #[operation]
    async fn lowercase(input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }
}

fn main() {}
