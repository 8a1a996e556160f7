playbook "x" {
  description = "unclosed"

steps {
  command "a" { run = "true" }
}
