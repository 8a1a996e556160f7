playbook "x" {
  description = "does nothing"
}

remaining {
  parallel = 5
}
