use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Lower {
    #[operation]
    fn lowercase(&self, input: StringMessage) -> StringMessage {
        StringMessage(input.0.to_lowercase())
    }
}

fn main() {}
