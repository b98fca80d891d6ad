use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Lower {
    #[hook]
    async fn on_connect(&self, event: OrbiterEvent) {
        println!("{event:?}");
    }
}

fn main() {}
