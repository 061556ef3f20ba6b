// dbus-batterybank GUI v1: every cell as a bar; the lowest (blue), highest (red) and balancing (orange) cells
// are coloured and named.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils
import "batterybank-paths.js" as BankPaths

MbPage {
	id: root

	property string bindPrefix
	property int cellCount
	property VBusItem minCell: VBusItem { bind: Utils.path(root.bindPrefix, "/System/MinCellVoltage") }
	property VBusItem maxCell: VBusItem { bind: Utils.path(root.bindPrefix, "/System/MaxCellVoltage") }
	property VBusItem batteryLowVoltage: VBusItem { bind: Utils.path(root.bindPrefix, "/Info/BatteryLowVoltage") }
	property VBusItem maxChargeVoltage: VBusItem { bind: Utils.path(root.bindPrefix, "/Info/MaxChargeVoltage") }
	// The bar runs from a little below the low-voltage cell level to a little above the charge voltage per cell.
	property real lowCell: cellCount > 0 && batteryLowVoltage.valid ? batteryLowVoltage.value / cellCount - 0.2 : 2.5
	property real highCell: cellCount > 0 && maxChargeVoltage.valid ? maxChargeVoltage.value / cellCount + 0.1 : 3.65

	model: cellCount
	delegate: MbItemRow {
		id: row

		property int number: index + 1
		property VBusItem voltage: VBusItem { bind: Utils.path(root.bindPrefix, "/Voltages/Cell" + row.number) }
		property VBusItem balances: VBusItem { bind: Utils.path(root.bindPrefix, "/Balances/Cell" + row.number) }
		property bool isMin: voltage.valid && root.minCell.valid && Math.abs(voltage.value - root.minCell.value) < 0.0005
		property bool isMax: voltage.valid && root.maxCell.valid && Math.abs(voltage.value - root.maxCell.value) < 0.0005
		property bool isBalancing: balances.valid && balances.value === 1

		description: qsTr("Cell %1").arg(number)
		values: [
			Item {
				width: 120
				height: 25
				Rectangle {
					anchors.verticalCenter: parent.verticalCenter
					width: parent.width
					height: 10
					radius: 5
					color: "#dddddd"
					Rectangle {
						height: parent.height
						radius: parent.radius
						width: parent.width * BankPaths.barFraction(row.voltage.valid ? row.voltage.value : undefined, root.lowCell, root.highCell)
						color: row.isBalancing ? "#f39c12" : row.isMax ? "#e74c3c" : row.isMin ? "#3498db" : "#27ae60"
					}
				}
			},
			Text {
				width: 70
				height: 25
				verticalAlignment: Text.AlignVCenter
				horizontalAlignment: Text.AlignRight
				text: row.voltage.valid ? row.voltage.value.toFixed(3) + "V" : "--"
			},
			Text {
				width: 80
				height: 25
				verticalAlignment: Text.AlignVCenter
				font.pixelSize: 11
				text: row.isBalancing ? qsTr("balancing") : row.isMax ? qsTr("highest") : row.isMin ? qsTr("lowest") : ""
			}
		]
	}
}
