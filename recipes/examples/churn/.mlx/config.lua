-- mlx project configuration of the churn example. Commit this file; put
-- credentials and machine-specific settings in .mlx/config.local.lua.
return {
  cache = { link = "copy" },
  remotes = {},
}
