steps {
  command "a" { run = "true" }
}
