use orbitalis::prelude::*;

struct Home;

#[core]
impl Home {
    #[sink]
    async fn on_lowercase(&self, out: StringMessage) {
        println!("{}", out.0);
    }
}

fn main() {}
