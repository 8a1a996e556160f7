playbook "unsafe-template" {}

steps {
  command "backticks" {
    run = "echo `hostname -s` `echo ${facts.role}`"
  }
  command "comment" {
    run = "systemctl restart app # ${facts.role}"
  }
  upload "escape" {
    source      = "../secrets/id_ed25519"
    destination = "/etc/app/../../root/.ssh/authorized_keys"
  }
}
