host "a" {}
group "g" {
  hosts = ["a", "missing"]
}
