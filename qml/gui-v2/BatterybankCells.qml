// dbus-batterybank gui-v2 plugin: every cell as a bar, lowest and highest cell and balancing marked.
// Bound to ProductId 0xBA6B (device list > our battery > Cells).
import QtQuick
import Victron.VenusOS
import "batterybank-paths.js" as BankPaths

DeviceListPluginPage {
	id: root

	readonly property string serviceUid: device.serviceUid
	readonly property int cellCount: BankPaths.cellCount(cellsPerBattery.valid ? cellsPerBattery.value : undefined,
			nrOfBatteries.valid ? nrOfBatteries.value : undefined, memberCellSum)
	// The bar runs from a little below the low-voltage cell level to a little above the charge voltage per cell.
	readonly property real lowCell: cellCount > 0 && batteryLowVoltage.valid ? batteryLowVoltage.value / cellCount - 0.2 : 2.5
	readonly property real highCell: cellCount > 0 && maxChargeVoltage.valid ? maxChargeVoltage.value / cellCount + 0.1 : 3.65
	property int memberCellSum: 0

	function sumMemberCells() {
		let sum = 0
		for (let i = 0; i < members.count; i++) {
			const item = members.objectAt(i)
			if (item && item.valid)
				sum += item.value
		}
		memberCellSum = sum
	}

	title: "Cells"

	VeQuickItem { id: cellsPerBattery; uid: root.serviceUid + "/System/NrOfCellsPerBattery" }
	VeQuickItem { id: nrOfBatteries; uid: root.serviceUid + BankPaths.NR_OF_BATTERIES }
	VeQuickItem { id: minCell; uid: root.serviceUid + "/System/MinCellVoltage" }
	VeQuickItem { id: maxCell; uid: root.serviceUid + "/System/MaxCellVoltage" }
	VeQuickItem { id: batteryLowVoltage; uid: root.serviceUid + "/Info/BatteryLowVoltage" }
	VeQuickItem { id: maxChargeVoltage; uid: root.serviceUid + "/Info/MaxChargeVoltage" }
	VeQuickItem { id: balancing; uid: root.serviceUid + "/Balancing" }

	// A bank whose batteries differ in cell count publishes no cells-per-battery: add up the members' counts.
	Instantiator {
		id: members
		model: VeQItemTableModel {
			uids: [ root.serviceUid + BankPaths.MEMBERS ]
			flags: VeQItemTableModel.AddChildren | VeQItemTableModel.AddNonLeaves | VeQItemTableModel.DontAddItem
		}
		delegate: VeQuickItem {
			uid: model.uid + BankPaths.MEMBER_NR_OF_CELLS
			onValueChanged: Qt.callLater(root.sumMemberCells)
		}
		onObjectAdded: Qt.callLater(root.sumMemberCells)
		onObjectRemoved: Qt.callLater(root.sumMemberCells)
	}

	GradientListView {
		header: SettingsColumn {
			width: parent ? parent.width : 0
			bottomPadding: spacing

			ListQuantity {
				text: "Sum of cells"
				dataItem.uid: root.serviceUid + "/Voltages/Sum"
				unit: VenusOS.Units_Volt_DC
				preferredVisible: dataItem.valid
			}
			ListText {
				text: "Difference highest - lowest"
				dataItem.uid: root.serviceUid + "/Voltages/Diff"
				secondaryText: dataItem.valid ? dataItem.value.toFixed(3) + "V" : "--"
				preferredVisible: dataItem.valid
			}
			ListText {
				text: "Balancing"
				secondaryText: balancing.valid ? (balancing.value === 1 ? "Active" : "Inactive") : "--"
				preferredVisible: balancing.valid
			}
			ListText {
				text: "No cell voltages from this battery"
				preferredVisible: root.cellCount === 0
			}
		}

		model: root.cellCount
		delegate: Item {
			id: cell

			required property int index
			readonly property int number: index + 1
			readonly property bool isMin: voltage.valid && minCell.valid && Math.abs(voltage.value - minCell.value) < 0.0005
			readonly property bool isMax: voltage.valid && maxCell.valid && Math.abs(voltage.value - maxCell.value) < 0.0005
			readonly property bool isBalancing: balances.valid && balances.value === 1
			readonly property string marks: [isMin ? "lowest" : "", isMax ? "highest" : "", isBalancing ? "balancing" : ""]
					.filter(m => m.length > 0).join(", ")

			width: ListView.view ? ListView.view.width : 0
			height: Theme.geometry_listItem_height

			VeQuickItem { id: voltage; uid: root.serviceUid + "/Voltages/Cell" + cell.number }
			VeQuickItem { id: balances; uid: root.serviceUid + "/Balances/Cell" + cell.number }

			Rectangle {
				anchors.fill: parent
				anchors.bottomMargin: 1
				color: Theme.color_listItem_background
				radius: Theme.geometry_listItem_radius
			}

			Label {
				id: nameLabel
				anchors.left: parent.left
				anchors.leftMargin: Theme.geometry_listItem_content_horizontalMargin
				anchors.verticalCenter: parent.verticalCenter
				width: parent.width * 0.18
				text: "Cell " + cell.number
				font.pixelSize: Theme.font_size_body1
				color: Theme.color_font_primary
			}

			Rectangle {
				id: track
				anchors.left: nameLabel.right
				anchors.right: valueLabel.left
				anchors.rightMargin: Theme.geometry_listItem_content_horizontalMargin
				anchors.verticalCenter: parent.verticalCenter
				height: parent.height / 3
				radius: height / 2
				color: Theme.color_listItem_separator

				Rectangle {
					anchors.left: parent.left
					anchors.top: parent.top
					anchors.bottom: parent.bottom
					width: parent.width * BankPaths.barFraction(voltage.valid ? voltage.value : undefined, root.lowCell, root.highCell)
					radius: parent.radius
					color: cell.isBalancing ? Theme.color_orange
						: cell.isMax ? Theme.color_red
						: cell.isMin ? Theme.color_blue
						: Theme.color_green
				}
			}

			Label {
				id: valueLabel
				anchors.right: parent.right
				anchors.rightMargin: Theme.geometry_listItem_content_horizontalMargin
				anchors.verticalCenter: parent.verticalCenter
				width: parent.width * 0.32
				horizontalAlignment: Text.AlignRight
				text: (voltage.valid ? voltage.value.toFixed(3) + "V" : "--") + (cell.marks.length > 0 ? "  " + cell.marks : "")
				font.pixelSize: Theme.font_size_body1
				color: cell.marks.length > 0 ? Theme.color_font_primary : Theme.color_font_secondary
			}
		}
	}
}
