// Package cashflow is the studio's money arithmetic: amounts in integer
// minor units of an ISO 4217 currency, exchange rates at their stated
// precision, and the monthly cash-flow projection of a budget along a
// production schedule. No floating point is used anywhere.
//
// The rules, which the tests hold for random budgets and schedules:
//
//   - A conversion multiplies exactly and rounds once, half to even
//     ([Rate.Convert]).
//   - A line item's amount is converted to the reporting currency first,
//     then spread over the months of its spend profile by the largest
//     remainder method with equal weights: every month gets the amount
//     divided by the number of months, rounded down, and the units left
//     over go one each to the earliest months ([Spread]). The months of a
//     line item sum exactly to its converted amount, and the projection's
//     months sum exactly to the converted budget.
//   - The months of a profile follow the schedule month by month, so moving
//     the schedule by k months moves every amount by exactly k months.
package cashflow
