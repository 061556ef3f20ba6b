.pragma library
// The battery-bank paths the pages read: THE list of them (src/bank/bank-paths.ts publishes them; the test
// test/qml/paths.test.ts checks every entry against bankPathTypes(), and that the pages read no other path
// outside the battery path table). Shared by the gui-v2 plugin and the GUI v1 pages.

// On the bank's own service.
var NR_OF_BATTERIES = "/System/NrOfBatteries";
var BATTERIES_SERIES = "/System/BatteriesSeries";
var BATTERIES_PARALLEL = "/System/BatteriesParallel";
// One child per member: /Batteries/<member>/…
var MEMBERS = "/Batteries";

// Under /Batteries/<member>.
var MEMBER_CONNECTED = "/Connected";
var MEMBER_HEALTH = "/Health";
var MEMBER_STRING = "/String";
var MEMBER_POSITION = "/Position";
var MEMBER_PRODUCT_NAME = "/ProductName";
var MEMBER_VOLTAGE = "/Voltage";
var MEMBER_CURRENT = "/Current";
var MEMBER_SOC = "/Soc";
var MEMBER_NR_OF_CELLS = "/NrOfCells";
var MEMBER_MIN_CELL_VOLTAGE = "/MinCellVoltage";
var MEMBER_MAX_CELL_VOLTAGE = "/MaxCellVoltage";
var MEMBER_MAX_CHARGE_CURRENT = "/MaxChargeCurrent";
var MEMBER_MAX_DISCHARGE_CURRENT = "/MaxDischargeCurrent";
var MEMBER_CHARGE_LIMITATION = "/ChargeLimitation";
var MEMBER_DISCHARGE_LIMITATION = "/DischargeLimitation";
var MEMBER_CHARGE_SHARE = "/ChargeShare";
var MEMBER_DISCHARGE_SHARE = "/DischargeShare";

// "online", "stale", "offline" (/Health) and /Connected as the word the member row shows.
function memberState(health, connected) {
    if (connected === 0)
        return "Disconnected";
    if (health === "online")
        return "Online";
    if (health === "stale")
        return "Not responding";
    if (health === "offline")
        return "Offline";
    return health === undefined ? "--" : String(health);
}

// The cell count of the service: cells per battery × batteries when they are all alike, else the sum over members.
function cellCount(cellsPerBattery, nrOfBatteries, memberCellSum) {
    if (cellsPerBattery !== undefined && cellsPerBattery !== null && cellsPerBattery > 0)
        return cellsPerBattery * (nrOfBatteries !== undefined && nrOfBatteries !== null && nrOfBatteries > 0 ? nrOfBatteries : 1);
    return memberCellSum > 0 ? memberCellSum : 0;
}

// Bar fraction 0..1 of a cell voltage between the low and high cell limits.
function barFraction(v, low, high) {
    if (v === undefined || v === null || !(high > low))
        return 0;
    return Math.max(0.02, Math.min(1, (v - low) / (high - low)));
}
