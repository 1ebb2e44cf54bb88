-- mlx project configuration of the quickstart. Commit this file; put
-- credentials and machine-specific settings in .mlx/config.local.lua.
return {
  -- The project id: its runs and models in a shared tracking database.
  project = "quickstart_iris",
  cache = { link = "copy" },
  remotes = {},
}
