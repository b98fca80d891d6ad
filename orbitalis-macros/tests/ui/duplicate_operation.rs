use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Lower {
    #[operation]
    async fn lowercase(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }

    #[operation(name = "lowercase")]
    async fn lowercase_ascii(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_ascii_lowercase())
    }
}

fn main() {}
