-- tensor_basics.lua: creation, inspection and printing, checked against analytic values.

test("zeros and sizes", function()
  local z = tensor.zeros(2, 3)
  check_eq(z:dim(), 2, "dim")
  check_eq(z:numel(), 6, "numel")
  check_eq(#z, 2, "#")
  check_eq(z:size(2), 3, "size(2)")
  check_eq(table.concat(tensor.zeros{2, 3}:shape(), "x"), "2x3", "table sizes")
  check_close(z:sum(), 0)
end)

test("new and totable", function()
  local t = tensor.new{{1, 2, 3}, {4, 5, 6}}
  check_eq(t[2][3], 6, "t[2][3]")
  check_eq(t:totable()[1][2], 2, "totable")
  t[1] = 7
  check_close(t, {{7, 7, 7}, {4, 5, 6}}, 0, "t[1] = 7")
end)
